// The dashboard's entry point: styles (bundled into assets/app.css) and the app.
import 'uplot/dist/uPlot.min.css';
import './styles/app.css';
import { render } from 'preact';
import { App } from './components/App';

const root = document.getElementById('app');
if (root) render(<App />, root);
